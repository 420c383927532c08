"""Data layer: raw loaders, preprocessing + leave-one-out split, split cache, fast batching.

Public API: :func:`prepare_data` (any ``dataset.format`` -> cached :class:`SplitData`),
:func:`build_dataloader`, :func:`write_split_csv`, and the containers :class:`SplitData`, :class:`SampleSet`.
"""

from ilora_dllm2rec.data.cache import write_split_csv
from ilora_dllm2rec.data.dataloader import build_dataloader
from ilora_dllm2rec.data.prepare import prepare_data
from ilora_dllm2rec.data.types import SampleSet, SplitData

__all__ = ["SampleSet", "SplitData", "build_dataloader", "prepare_data", "write_split_csv"]
