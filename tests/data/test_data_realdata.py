"""MovieLens-100K as GroupLens ships it (skips when absent; path from ML100K_DIR, see tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import make_cfg

from ilora_dllm2rec.data import prepare_data


@pytest.mark.realdata
def test_ml100k_real(ml100k_dir, tmp_path):
    split = prepare_data(make_cfg("ml-100k", ml100k_dir, min_user_inter=5), tmp_path)
    # every ML-100K user has >= 20 ratings, so min_user_inter=5 keeps all 943 users and all 1682 items
    assert split.num_items == 1682 and split.pad_id == 1682
    assert len(split.val) == len(split.test) == 943
    # each user contributes n - 3 training samples: 100000 - 3 * 943
    assert len(split.train) == 100_000 - 3 * 943 == 97_171
    assert len(np.unique(split.test.user)) == 943
    assert split.item_titles[0] == "Toy Story (1995)" and split.raw_item_ids[:2] == ["1", "2"]
    np.testing.assert_array_equal(split.test.candidates[:, 0], split.test.target)
    assert split.train.len_seq.min() == 1 and split.train.len_seq.max() == 50
    again = prepare_data(make_cfg("ml-100k", ml100k_dir, min_user_inter=5), tmp_path)
    assert again.summary() == split.summary()
