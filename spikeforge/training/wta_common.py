"""Shared settings of the WTA recipes (``wta_causal.py``, ``wta_mlm.py``): the WTA Spiking Transformer on character-level text (golden/models/wta_spikingformer.py).

* ``wta-causal``: WD-Spikingformer (causal WTA self-attention, no cross-attention), next-character
  prediction;
* ``wta-mlm``: WE-Spikingformer (non-causal WTA self-attention), masked-character prediction.

Model keys (``--set``): ``embed_dim``, ``depth``, ``heads``, ``time_steps``, ``mlp_ratio``, ``k``,
``k_ratio`` (k = max(1, floor(L ratio)) when > 0), ``min_score``, ``tau``, ``threshold``, ``pos_std`` (initial spread of the position embeddings).
"""

from golden.models.wta_spikingformer import WDSpikingformer, WESpikingformer

MODEL_DEFAULTS = {"embed_dim": 64, "depth": 1, "heads": 4, "time_steps": 2, "mlp_ratio": 2, "k": 4, "k_ratio": 0.0,
                  "min_score": 0, "tau": 2.0, "threshold": 1.0, "pos_std": 0.3}
TRAIN_DEFAULTS = {"epochs": 4, "lr": 0.004, "batch_size": 32, "seq_len": 32, "steps_per_epoch": 150,
                  "weight_decay": 0.01, "eval_windows": 256, "max_chars": None}


def build_causal(vocab_size, **config):
    return WDSpikingformer(vocab_size, max_len=64, **config)


def build_mlm(vocab_size, **config):
    return WESpikingformer(vocab_size, max_len=64, **config)
