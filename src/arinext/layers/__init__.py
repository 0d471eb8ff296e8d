from .classifier import ClassifierHead, ClassifierModel, HeadOutput, MultiHeadOutput, NumClasses, output_classes
from .reparam import (
    BRANCH_PATHS,
    BranchPath,
    ConvNorm,
    Fold,
    ReparamMultiKernelDWConv,
    fold_state,
    fuse_conv_bn,
    pad_kernel_to,
    reparameterize_model,
    set_branch_path,
)

__all__ = [
    "BRANCH_PATHS",
    "BranchPath",
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
    "output_classes",
    "pad_kernel_to",
    "reparameterize_model",
    "set_branch_path",
]
