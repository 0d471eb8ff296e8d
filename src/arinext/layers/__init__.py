from .reparam import (
    ConvNorm,
    Fold,
    ReparamMultiKernelDWConv,
    fuse_conv_bn,
    pad_kernel_to,
    reparameterize_model,
    unwrap_model,
)

__all__ = [
    "ConvNorm",
    "Fold",
    "ReparamMultiKernelDWConv",
    "fuse_conv_bn",
    "pad_kernel_to",
    "reparameterize_model",
    "unwrap_model",
]
