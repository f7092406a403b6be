"""The embedded synthetic datasets: small COCO-format datasets generated on disk, deterministically.

No real data can be assumed to be available, so the library can write its own: "shapes" (circles,
triangles, squares, stars; 4 categories with json ids 1, 3, 7, 12) and "persons" (stick figures
with COCO's 17 keypoints), on textured backgrounds, several objects per image with occlusion,
truncation, small objects and unannotated distractors. Segmentations describe the visible pixels
exactly (pycocotools decodes them to precisely what was painted).

    generate_synthetic_dataset(output_dir, kind="shapes", splits={"train": 1000, "val": 200},
                               seed=0, image_size=(256, 320)) -> {split: (images folder, json path)}
    ensure_synthetic_dataset(name, data_dir)   # generate on first use for a catalog name
    SYNTHETIC_DATASETS                         # catalog name -> (kind, split)

Command line: tools/make_synthetic_dataset.py.
"""

from .catalog import SYNTHETIC_DATASETS, ensure_synthetic_dataset
from .writer import generate_synthetic_dataset

__all__ = ["SYNTHETIC_DATASETS", "ensure_synthetic_dataset", "generate_synthetic_dataset"]
