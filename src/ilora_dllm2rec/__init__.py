"""iLoRA teacher -> DLLM2Rec distillation -> small sequential recommenders."""

__version__ = "0.1.0"
