"""The "persons" images: stick figures with COCO's 17 keypoints, plus unannotated distractor shapes.

A figure is a head (a disc with two eyes), a torso, shoulder and hip bars, arms and legs (thick
segments with round joints) and feet, in a random pose, size (uniform, 40 px to 95% of the image
height), tilt, stretch, colour and position; several per image, overlapping, some cut by the border.

Figures face the camera, so the person's left side is on the image's right (COCO's convention,
which horizontal-flip augmentation relies on when it swaps left and right keypoints).

Keypoints are (x, y) in pixel coordinates (pixel (c, r) covers [c, c+1) x [r, r+1)) with COCO's
visibility: 2 visible, 1 inside the image but covered by something drawn over the figure, 0 outside
the image (then x = y = 0). Every keypoint lies at least ~0.75 px inside its own body part (joint
discs of radius >= 1 px, face points well inside a head of radius >= 3 px), so an uncovered
keypoint's pixel is always one of the figure's visible pixels.
"""

from typing import Dict, List, Tuple

import numpy as np

from ....structures.keypoint import PersonKeypoints
from .background import textured_background
from .masks import snap
from .scene import Layer, Scene, annotate
from .shapes import CATEGORIES as SHAPE_CATEGORIES
from .shapes import random_shape

# COCO's 17 person keypoints, in COCO's order (the structure that flips them owns the list).
KEYPOINT_NAMES = list(PersonKeypoints.NAMES)
# COCO's person skeleton: 19 edges between 1-based keypoint indices.
SKELETON = [
    [16, 14],
    [14, 12],
    [17, 15],
    [15, 13],
    [12, 13],
    [6, 12],
    [7, 13],
    [6, 7],
    [6, 8],
    [7, 9],
    [8, 10],
    [9, 11],
    [2, 3],
    [1, 2],
    [1, 3],
    [2, 4],
    [3, 5],
    [4, 6],
    [5, 7],
]
CATEGORIES: List[Dict[str, object]] = [
    {"id": 1, "name": "person", "supercategory": "person", "keypoints": KEYPOINT_NAMES, "skeleton": SKELETON},
]

# Body proportions in "torso units" (neck to pelvis = 1), figure facing the camera, y down.
HEAD_RADIUS = 0.3
HEAD_CENTER = (0.0, -0.3)
SHOULDER = (0.28, 0.08)  # (x for the left side, y); the right side mirrors x
HIP = (0.18, 1.0)
UPPER_ARM, FOREARM, THIGH, SHIN, FOOT = 0.55, 0.5, 0.6, 0.6, 0.18
BODY_HEIGHT = 2.8  # head top (-0.6) to the soles (about 2.2), at rest


def _disc(center: np.ndarray, radius: float, k: int) -> np.ndarray:
    t = np.arange(k) * (2 * np.pi / k)
    return center + radius * np.stack([np.cos(t), np.sin(t)], axis=1)


def _bar(a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    """The rectangle of half-width `half_width` around segment a-b (a point-sized one if a == b)."""
    d = b - a
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6) * half_width
    return np.stack([a + n, b + n, b - n, a - n])


def _pose(rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Joint positions in torso units for a random pose (names as KEYPOINT_NAMES, body joints)."""
    joints = {"neck": np.array([0.0, -0.05]), "pelvis": np.array([0.0, HIP[1]])}
    for side, sign in (("left", 1.0), ("right", -1.0)):

        def towards(angle: float, sign: float = sign) -> np.ndarray:
            # angle 0 points straight down, positive angles point away from the body's midline
            return np.array([sign * np.sin(angle), np.cos(angle)])

        shoulder = np.array([sign * SHOULDER[0], SHOULDER[1]])
        upper = np.radians(rng.uniform(-25.0, 165.0))
        elbow = shoulder + UPPER_ARM * towards(upper)
        wrist = elbow + FOREARM * towards(upper + np.radians(rng.uniform(-30.0, 130.0)))
        hip = np.array([sign * HIP[0], HIP[1]])
        thigh = np.radians(rng.uniform(-10.0, 45.0))
        knee = hip + THIGH * towards(thigh)
        shin = thigh + np.radians(rng.uniform(-35.0, 35.0))
        ankle = knee + SHIN * towards(shin)
        joints.update(
            {
                f"{side}_shoulder": shoulder,
                f"{side}_elbow": elbow,
                f"{side}_wrist": wrist,
                f"{side}_hip": hip,
                f"{side}_knee": knee,
                f"{side}_ankle": ankle,
                # the foot points outwards, roughly perpendicular to the shin
                f"{side}_toe": ankle + FOOT * towards(shin + np.pi / 2 * 0.8),
            }
        )
    head = np.array(HEAD_CENTER)
    yaw = rng.uniform(-0.25, 0.25) * HEAD_RADIUS  # the face turns a little: eyes and nose shift
    joints["head"] = head
    joints["nose"] = head + np.array([yaw, 0.15 * HEAD_RADIUS])
    joints["left_eye"] = head + np.array([0.35 * HEAD_RADIUS + yaw, -0.12 * HEAD_RADIUS])
    joints["right_eye"] = head + np.array([-0.35 * HEAD_RADIUS + yaw, -0.12 * HEAD_RADIUS])
    joints["left_ear"] = head + np.array([0.75 * HEAD_RADIUS, 0.0])
    joints["right_ear"] = head + np.array([-0.75 * HEAD_RADIUS, 0.0])
    return joints


def random_person(rng: np.random.Generator, height: int, width: int) -> Layer:
    """A stick figure Layer (category 1, keypoints [17, 2]) at a random pose, size and place."""
    joints = _pose(rng)
    figure_height = float(rng.uniform(40.0, max(41.0, 0.95 * height)))
    scale = figure_height / BODY_HEIGHT  # pixels per torso unit
    tilt = np.radians(np.clip(rng.normal(0.0, 10.0), -25.0, 25.0))
    stretch = rng.uniform(0.85, 1.15)
    c, s = np.cos(tilt), np.sin(tilt)
    rotation = np.array([[c, s], [-s, c]])
    # The figure's middle (y = 0.8, just above the hips) lands anywhere in the image; big ones get cut.
    center = np.array([rng.uniform(0.0, 1.0) * width, rng.uniform(0.0, 1.0) * height])

    def to_image(p: np.ndarray) -> np.ndarray:
        # Snapped (masks.snap) like every drawn coordinate, so the json says exactly what was drawn.
        q = (np.asarray(p, dtype=np.float64) - np.array([0.0, 0.8])) * np.array([stretch, 1.0]) * scale
        return snap(q @ rotation + center)

    half = max(1.0, 0.055 * scale)  # limb half-width in pixels: >= 1 px keeps joints on the figure
    torso_half = max(1.2, 0.08 * scale)
    head_radius = max(3.0, HEAD_RADIUS * scale)
    j = {name: to_image(p) for name, p in joints.items()}
    parts = [snap(_disc(j["head"], head_radius, 32)), snap(_bar(j["neck"], j["pelvis"], torso_half))]
    segments = [("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")]
    for side in ("left", "right"):
        segments += [
            (f"{side}_shoulder", f"{side}_elbow"),
            (f"{side}_elbow", f"{side}_wrist"),
            (f"{side}_hip", f"{side}_knee"),
            (f"{side}_knee", f"{side}_ankle"),
            (f"{side}_ankle", f"{side}_toe"),
        ]
    parts += [snap(_bar(j[a], j[b], half)) for a, b in segments]
    for side in ("left", "right"):  # round joints
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            radius = half * (1.4 if joint == "wrist" else 1.0)  # little fists
            parts.append(snap(_disc(j[f"{side}_{joint}"], radius, 12)))
    eye_radius = max(0.7, 0.12 * head_radius)
    eyes = [snap(_disc(j[f"{side}_eye"], eye_radius, 10)) for side in ("left", "right")]
    keypoints = np.stack([j[name] for name in KEYPOINT_NAMES])
    return Layer(parts, category_id=1, simple=False, keypoints=keypoints, details=eyes)


def keypoint_annotation(scene: Scene, index: int) -> Tuple[List[float], int]:
    """(COCO "keypoints" [x, y, v] * 17, "num_keypoints") of layer `index`, from the layer map."""
    values: List[float] = []
    for x, y in scene.layers[index].keypoints:
        if not (0.0 <= x < scene.width and 0.0 <= y < scene.height):
            values += [0.0, 0.0, 0]
            continue
        # Covered when a layer drawn later painted the keypoint's pixel.
        covered = scene.layer_map[int(y), int(x)] > index
        values += [float(x), float(y), 1 if covered else 2]
    return values, sum(1 for v in values[2::3] if v > 0)


def render_persons_image(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, Scene, List[dict]]:
    """One image: (uint8 RGB `[H, W, 3]`, its Scene, COCO annotations without ids, in z-order).

    Like shapes.render_shapes_image, each annotation carries an extra "layer" key.
    """
    scene = Scene(textured_background(rng, height, width), min_visible=0.5)
    kinds = ["person"] * int(rng.integers(1, 5)) + ["distractor"] * int(rng.integers(0, 4))
    rng.shuffle(kinds)
    shape_names = [c["name"] for c in SHAPE_CATEGORIES]
    for kind in kinds:
        for _ in range(20):
            if kind == "person":
                layer = random_person(rng, height, width)
            else:
                name = shape_names[int(rng.integers(len(shape_names)))]
                layer = Layer([random_shape(rng, name, height, width)], category_id=0)
            if scene.try_add(layer, rng):
                break
    annotations = []
    for k, layer in enumerate(scene.layers):
        if layer.annotated:
            keypoints, num_keypoints = keypoint_annotation(scene, k)
            annotations.append(dict(annotate(scene, k), keypoints=keypoints, num_keypoints=num_keypoints, layer=k))
    return scene.finish(rng), scene, annotations
