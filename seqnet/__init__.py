"""seqnet: the lecture's IMDB CNN as a backend-agnostic Keras 3 library."""

from seqnet.config import ModelConfig, TrainConfig
from seqnet.data import ImdbDataset, load_imdb, read_dataset
from seqnet.model import build_imdb_cnn
from seqnet.text import Vocabulary

__all__ = [
    "ImdbDataset",
    "ModelConfig",
    "TrainConfig",
    "Vocabulary",
    "build_imdb_cnn",
    "load_imdb",
    "read_dataset",
]
__version__ = "0.1.0"
