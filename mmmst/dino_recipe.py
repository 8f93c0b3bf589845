"""DINO's multi-crop recipe (``DataAugmentationDINO`` in DINO's ``main_dino.py``): how many global views a sample
has, how its views are cropped, and the photometric draws of each view.

The one definition of these numbers: ``MultiCropViews`` (the per-image PIL path, in the dataloader workers),
``MultiCropDataPreprocessor`` / ``dino_photometric`` (the batched path, on the model's device) and ``MST`` read
them from here. ``tools/analysis_tools/benchmark_pipeline.py`` keeps an independent copy, on purpose: it is the
reference written the way DINO writes it, against which both paths are compared.
"""

#: the first views of a sample are its global crops, seen by the teacher; DINO's loss pairs them and gives each
#: its own photometric draws, so the number is part of the method, not a setting
NUM_GLOBAL_VIEWS = 2

GLOBAL_CROP_SCALE = (0.4, 1.0)  # area range of a global crop
LOCAL_CROP_SCALE = (0.05, 0.4)  # area range of a local crop
FLIP_PROB = 0.5
COLOR_JITTER_PROB = 0.8
#: brightness, contrast, saturation, hue of torchvision's ColorJitter, applied in random order
COLOR_JITTER_STRENGTH = (0.4, 0.4, 0.2, 0.1)
GRAYSCALE_PROB = 0.2
BLUR_SIGMA = (0.1, 2.0)  # sigma of the Gaussian blur, drawn per image, in pixels
BLUR_PROBS = (1.0, 0.1, 0.5)  # global 1, global 2, every local view
SOLARIZE_PROBS = (0.0, 0.2, 0.0)  # global 1, global 2, every local view
SOLARIZE_THRESHOLD = 128  # of 255, as PIL's ImageOps.solarize
