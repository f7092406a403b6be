"""Inputs and outputs of the demo scripts (tools/demo.py, demo/webcam.py): find the images or video
an --input names, write annotated images and videos, and run a COCODemo over a stream of frames.
Frames are OpenCV BGR uint8 arrays throughout."""

import glob
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# Containers and the codec written into them (both built into OpenCV's own FFmpeg / AVI writers).
_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v"}
ESC = 27


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def resolve_input(spec: str) -> Tuple[str, object]:
    """What --input names: ("camera", index) for an integer that is not a file, ("files", [paths of
    images and videos]) for a folder (its images, sorted), a glob pattern or a single file.
    FileNotFoundError / ValueError with the reason otherwise."""
    if spec.isdigit() and not os.path.exists(spec):
        return "camera", int(spec)
    if os.path.isdir(spec):
        files = sorted(os.path.join(spec, f) for f in os.listdir(spec) if is_image(f))
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {spec}")
        return "files", files
    if os.path.isfile(spec):
        files = [spec]
    elif glob.has_magic(spec):
        files = sorted(f for f in glob.glob(spec, recursive=True) if os.path.isfile(f))
        if not files:
            raise FileNotFoundError(f"no file matches {spec!r}")
    else:
        raise FileNotFoundError(f"--input {spec!r} is neither a file, a folder, a glob pattern nor a camera index")
    unknown = [f for f in files if not (is_image(f) or is_video(f))]
    if unknown and len(files) == 1:
        raise ValueError(
            f"{unknown[0]}: not an image ({', '.join(IMAGE_EXTENSIONS)}) or a video ({', '.join(VIDEO_EXTENSIONS)})"
        )
    return "files", [f for f in files if f not in unknown]


def output_path_for(source: str, root: str, output: str, single: bool, extension: Optional[str] = None) -> str:
    """Where the annotated version of `source` goes: `output` itself when it names a file of the
    right kind for a single input, else `output`/<path relative to root> (extension replaced by
    `extension` when given)."""
    kind = is_video if is_video(source) else is_image
    if single and kind(output) and not os.path.isdir(output):
        return output
    relative = os.path.relpath(source, root) if root else os.path.basename(source)
    if extension is not None:
        relative = os.path.splitext(relative)[0] + extension
    return os.path.join(output, relative)


def write_image(path: str, image: np.ndarray) -> None:
    """cv2.imwrite a BGR image, creating the folder; OSError if OpenCV cannot write it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, image):
        raise OSError(f"could not write image {path}")


def open_video_writer(path: str, fps: float, size: Tuple[int, int]) -> cv2.VideoWriter:
    """A cv2.VideoWriter for BGR frames of size (width, height); MJPG in .avi, mp4v otherwise."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fourcc = _FOURCC.get(os.path.splitext(path)[1].lower(), "mp4v")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps if fps and fps > 0 else 25.0, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path} with codec {fourcc}; try an .avi or .mp4 output name")
    return writer


def read_frames(capture: cv2.VideoCapture, max_frames: int = 0) -> Iterator[np.ndarray]:
    """Frames of an opened capture until it ends (or max_frames > 0 have been read)."""
    count = 0
    while max_frames <= 0 or count < max_frames:
        ok, frame = capture.read()
        if not ok:
            return
        count += 1
        yield frame


def batches(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def show(window: str, frame: np.ndarray) -> bool:
    """Display a frame; False once the user pressed ESC. A clear error on GUI-less OpenCV builds."""
    try:
        cv2.imshow(window, frame)
        return cv2.waitKey(1) != ESC
    except cv2.error as e:
        raise RuntimeError(
            f"this OpenCV build cannot open a window ({e.err}); it is probably opencv-python-headless: "
            f"write the result to a file instead (--output result.mp4)"
        ) from None


def close_windows() -> None:
    """cv2.destroyAllWindows(), ignored on OpenCV builds without a GUI."""
    try:
        cv2.destroyAllWindows()
    except cv2.error:
        pass


def annotate_stream(
    annotate: Callable[[Sequence[np.ndarray]], List[np.ndarray]],
    capture: cv2.VideoCapture,
    writer: Optional[cv2.VideoWriter] = None,
    window: Optional[str] = None,
    max_frames: int = 0,
    batch_size: int = 1,
    description: str = "frames",
    progress_bar: bool = True,
) -> int:
    """Run `annotate` (a list of BGR frames -> annotated frames) over a capture, writing each result
    to `writer` and/or showing it in `window` (ESC stops), with a progress bar over the frames.
    Returns the number of frames done."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if max_frames > 0:
        total = min(total, max_frames) if total > 0 else max_frames
    done = 0
    with tqdm(total=total if total > 0 else None, desc=description, unit="frame", disable=not progress_bar) as progress:
        for frames in batches(read_frames(capture, max_frames), batch_size):
            for frame in annotate(frames):
                if writer is not None:
                    writer.write(frame)
                done += 1
                progress.update(1)
                if window is not None and not show(window, frame):
                    return done
    return done
