"""Training and evaluation: recipes, the training loop, checkpoints, DDP, metrics and reports."""

from .config import DataConfig, OptimConfig, TrainConfig, list_recipes, load_config
from .engine import evaluate, precise_bn, train_one_epoch
from .tasks import MultiHeadTask, MultiLabelTask, SingleLabelTask, make_task
from .trainer import FitResult, FoldsResult, fit, fit_folds

__all__ = [
    "DataConfig",
    "FitResult",
    "FoldsResult",
    "MultiHeadTask",
    "MultiLabelTask",
    "OptimConfig",
    "SingleLabelTask",
    "TrainConfig",
    "evaluate",
    "fit",
    "fit_folds",
    "list_recipes",
    "load_config",
    "make_task",
    "precise_bn",
    "train_one_epoch",
]
