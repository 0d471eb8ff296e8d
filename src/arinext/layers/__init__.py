from .reparam import (
    ConvNorm,
    Fold,
    ReparamMultiKernelDWConv,
    fuse_conv_bn,
    pad_kernel_to,
    randomize_batchnorm,
    reparameterize_model,
    unwrap_model,
)

__all__ = [
    "ConvNorm",
    "Fold",
    "ReparamMultiKernelDWConv",
    "fuse_conv_bn",
    "pad_kernel_to",
    "randomize_batchnorm",
    "reparameterize_model",
    "unwrap_model",
]
