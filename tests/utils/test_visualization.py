"""Drawing functions: right image sizes, pixels changed inside detections and unchanged far away."""

import cv2
import numpy as np
import pytest
import torch

from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.utils import visualization as vis

H, W = 120, 160
BOX = (20.0, 30.0, 70.0, 80.0)  # xyxy
FAR = (slice(100, 120), slice(120, 160))  # rows, columns well away from BOX and its label


def _image(value=40):
    return np.full((H, W, 3), value, dtype=np.uint8)


def _changed(a, b):
    return np.any(a != b, axis=2)


def _detection(mask_size=None, keypoints=False, score=0.9, label=2):
    boxes = BoxList(torch.tensor([BOX]), (W, H))
    boxes.add_field("scores", torch.tensor([score]))
    boxes.add_field("labels", torch.tensor([label]))
    if mask_size == "pasted":
        mask = torch.zeros((1, 1, H, W), dtype=torch.bool)
        mask[0, 0, 35:75, 25:65] = True
        boxes.add_field("mask", mask)
    elif mask_size:
        boxes.add_field("mask", torch.ones((1, 1, mask_size, mask_size)) * 0.9)
    if keypoints:
        points = torch.zeros((1, 17, 3))
        points[0, :, 0] = torch.linspace(25, 65, 17)
        points[0, :, 1] = torch.linspace(35, 75, 17)
        points[0, :, 2] = 1
        kps = PersonKeypoints(points, (W, H))
        kps.add_field("logits", torch.full((1, 17), 5.0))
        boxes.add_field("keypoints", kps)
    return boxes


def _inside(changed, x1, y1, x2, y2, margin=0):
    """Fraction of changed pixels that lie within the (expanded) rectangle."""
    ys, xs = np.nonzero(changed)
    inside = (xs >= x1 - margin) & (xs <= x2 + margin) & (ys >= y1 - margin) & (ys <= y2 + margin)
    return inside.mean() if len(xs) else 0.0


def test_legacy_label_colors_follow_the_original_formula():
    colors = vis.legacy_label_colors(torch.tensor([0, 1, 5]))
    assert colors.shape == (3, 3) and colors.dtype == np.uint8
    expected = [[((2**25 - 1) * k) % 255, ((2**15 - 1) * k) % 255, ((2**21 - 1) * k) % 255] for k in (0, 1, 5)]
    assert colors.tolist() == expected


def test_overlay_boxes_draws_the_outline_only():
    image = _image()
    out = vis.overlay_boxes(image.copy(), torch.tensor([BOX]), [(0, 0, 255)], thickness=1)
    changed = _changed(out, image)
    assert out.shape == image.shape
    assert changed[30, 20:71].all() and changed[80, 20:71].all() and changed[30:81, 20].all()
    assert not changed[40:70, 30:60].any()  # inside the outline
    assert _inside(changed, *BOX) == 1.0


def test_overlay_mask_contours_outline_the_mask():
    image = _image()
    mask = torch.zeros((1, 1, H, W), dtype=torch.bool)
    mask[0, 0, 40:70, 30:60] = True
    out = vis.overlay_mask_contours(image.copy(), mask, [(255, 0, 0)], thickness=3)
    changed = _changed(out, image)
    assert changed[40, 45] and changed[55, 30]  # on the border
    assert not changed[55, 45]  # the middle stays
    assert _inside(changed, 30, 40, 59, 69, margin=2) == 1.0


def test_overlay_class_names_writes_above_the_box_and_stays_in_the_image():
    image = _image()
    out = vis.overlay_class_names(image.copy(), torch.tensor([BOX, (100.0, 0.0, 150.0, 20.0)]), ["cat: 0.90", "top"])
    changed = _changed(out, image)
    assert changed[15:31, 20:100].any()  # the first text, baseline on y1 = 30
    assert changed[0:20, 100:150].any()  # the second one moved down into the image
    assert not changed[FAR].any()


def test_mask_montage_has_the_image_size_and_tiles_in_order():
    masks = torch.zeros((5, 1, H, W), dtype=torch.uint8)
    masks[1] = 255  # the second tile (top right) fully on
    montage = vis.mask_montage(masks, H, W, masks_per_dim=2)
    assert montage.shape == (H, W, 3) and montage.dtype == np.uint8
    jet = cv2.applyColorMap(np.array([[0, 255]], dtype=np.uint8), cv2.COLORMAP_JET)[0]
    assert (montage[10, W - 10] == jet[1]).all() and (montage[10, 10] == jet[0]).all()
    assert (montage[H - 10, 10] == jet[0]).all()
    for masks_per_dim in (1, 3):
        assert vis.mask_montage(masks.bool(), 101, 77, masks_per_dim).shape == (101, 77, 3)
    assert vis.mask_montage(torch.zeros((0, 1, H, W)), H, W).shape == (H, W, 3)
    assert vis.mask_montage(torch.rand((2, 1, 28, 28)), H, W).shape == (H, W, 3)  # float probabilities
    with pytest.raises(ValueError):
        vis.mask_montage(masks, H, W, masks_per_dim=0)


def test_vis_keypoints_draws_above_the_threshold_only():
    image = _image()
    kps = _detection(keypoints=True).get_field("keypoints")
    rows = vis.keypoints_as_rows(kps)
    assert rows.shape == (1, 3, 17)
    out = vis.vis_keypoints(image, rows[0], kp_thresh=2, alpha=0.7)
    changed = _changed(out, image)
    assert out.shape == image.shape and changed.any()
    assert _inside(changed, 25, 35, 65, 75, margin=4) == 1.0
    assert not _changed(vis.vis_keypoints(image, rows[0], kp_thresh=10), image).any()
    other_layout = np.array([[30.0, 60.0], [40.0, 70.0], [5.0, 5.0]])  # 2 keypoints: joints only
    assert _changed(vis.vis_keypoints(image, other_layout), image)[40, 30]
    with pytest.raises(ValueError):
        vis.vis_keypoints(image, np.zeros((2, 17)))


def test_keypoints_as_rows_uses_visibility_for_ground_truth():
    points = torch.tensor([[[10.0, 20.0, 2.0], [30.0, 40.0, 0.0]]])
    rows = vis.keypoints_as_rows(PersonKeypoints(points, (W, H)))
    assert rows.tolist() == [[[10.0, 30.0], [20.0, 40.0], [2.0, 0.0]]]


def test_rainbow_colors_go_from_purple_to_red():
    colors = vis.rainbow_colors(5)
    assert len(colors) == 5 and all(len(c) == 3 for c in colors)
    assert colors[0][0] == 255 and colors[0][2] == 127  # BGR: blue, half red
    assert colors[-1][2] == 255 and colors[-1][0] == 0  # red


@pytest.mark.parametrize("mask", [None, 28, "pasted"])
def test_draw_predictions_changes_pixels_in_the_box_only(mask):
    image = _image()
    out = vis.draw_predictions(image, _detection(mask_size=mask, keypoints=True), ["bg", "a", "b"])
    changed = _changed(out, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert changed[30:81, 20:71].any()
    assert not changed[FAR].any()
    # the label is drawn above the box: allow its height, everything else stays within the box
    assert _inside(changed, BOX[0], BOX[1] - 15, BOX[2] + 60, BOX[3], margin=1) == 1.0
    if mask is not None:
        assert changed[55, 45]  # filled mask


def test_draw_predictions_threshold_and_resize():
    image = _image()
    low = _detection(score=0.2)
    assert not _changed(vis.draw_predictions(image, low, score_threshold=0.5), image).any()
    half = _detection().resize((W // 2, H // 2))  # predictions in another size are scaled to the image
    changed = _changed(vis.draw_predictions(image, half), image)
    assert changed[30, 20:71].all()
    with pytest.raises(ValueError):
        vis.draw_predictions(image.astype(np.float32), low)


def test_save_image_writes_rgb_as_a_normal_picture(tmp_path):
    image = _image()
    image[..., 0] = 200  # red in RGB
    path = str(tmp_path / "x.png")
    vis.save_image(path, image)
    assert (cv2.imread(path)[..., ::-1] == image).all()


def test_draw_predictions_reads_heat_map_masks_as_probabilities():
    image = _image()
    detection = _detection()
    heat = torch.zeros((1, 1, H, W), dtype=torch.uint8)
    heat[0, 0, 35:75, 25:65] = 100  # below one half: not part of the mask
    heat[0, 0, 45:65, 35:55] = 200
    detection.add_field("mask", heat)
    changed = _changed(vis.draw_predictions(image, detection), image)
    assert changed[55, 45] and not changed[40, 30]
