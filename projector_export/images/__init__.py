"""Public API for the pictures of a CNN in TensorBoard's IMAGES tab: filters, feature maps, confusion
matrix, misclassified examples, Grad-CAM and filter patterns."""

from projector_export.images.callback import DEFAULT_IMAGES_EVERY, ImageLogger
from projector_export.images.confusion import confusion_matrix
from projector_export.images.filter_patterns import filter_patterns
from projector_export.images.grad_cam import grad_cam

__all__ = ["DEFAULT_IMAGES_EVERY", "ImageLogger", "confusion_matrix", "filter_patterns", "grad_cam"]
