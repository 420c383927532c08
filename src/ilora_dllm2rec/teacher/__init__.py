"""The iLoRA teacher (ALGORITHMS.md sections 6-7).

Modules (import them directly; this package imports nothing heavy on its own):

- ``llm``          load_llm(llm_path, ...) -> (model, tokenizer): embedded / tiny: / .gguf / folder / HF id
- ``prepare_llm``  prepare_llm(...) and ``python -m ilora_dllm2rec.teacher.prepare_llm`` (GGUF -> cached folder)
- ``tiny_llm``     build_tiny_llm(out_dir) -> a tiny random Llama + tokenizer for tests and smoke runs
- ``prompts``      templates, special tokens, PromptBuilder (left-padded batches, most recent history kept)
- ``moe_lora``     MoELoRALinear, inject_moelora, configure_adapter (moelora | lora | freeze | full)
- ``ilora_model``  ILoRAModel: forward(seq, len_seq) -> scores, h_u, q_u, z_u, gate; item embeddings; checkpoints
- ``imitation``    imitation_loss, LambdaSchedule, teacher_loss
- ``interfaces``   TeacherRecommender (score, item_embeddings)
- ``factory``      build_ilora_model(teacher_cfg, student, item_titles, model_cache_dir=...), build_lambda_schedule
"""
