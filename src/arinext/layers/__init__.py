from .classifier import ClassifierHead, ClassifierModel, HeadOutput, MultiHeadOutput, NumClasses
from .reparam import (
    ConvNorm,
    Fold,
    ReparamMultiKernelDWConv,
    fold_state,
    fuse_conv_bn,
    pad_kernel_to,
    randomize_batchnorm,
    reparameterize_model,
    unwrap_model,
)

__all__ = [
    "ClassifierHead",
    "ClassifierModel",
    "ConvNorm",
    "Fold",
    "HeadOutput",
    "MultiHeadOutput",
    "NumClasses",
    "ReparamMultiKernelDWConv",
    "fold_state",
    "fuse_conv_bn",
    "pad_kernel_to",
    "randomize_batchnorm",
    "reparameterize_model",
    "unwrap_model",
]
