"""Videos (MP4, AVI, MOV; PyAV) -> (N, H, W) uint8 luminance (BT.601 of the RGB decode)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fhbiometry.readers.common import DEFAULT_MAX_PIXELS, FileFrames, InputError, check_pixels, error_detail, luminance
from fhbiometry.readers.registry import register


@register(".mp4", ".avi", ".mov", kind="video")
def read_video_file(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFrames:
    """A video file as :class:`FileFrames` (always a cine, even with one frame)."""
    return FileFrames(read_video(path, max_pixels), multi_frame=True)


def read_video(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """All frames of a video (PyAV) -> (N, H, W) uint8 luminance (BT.601 of the RGB decode)."""
    import av  # lazy: PyAV only when a video is read

    path = Path(path)
    fix = "re-encode it (e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`) or remove it"
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(path, "holds no video stream", fix)
            stream = container.streams.video[0]
            check_pixels(path, stream.codec_context.width, stream.codec_context.height,
                         max_pixels, "video frame")
            for frame in container.decode(stream):
                check_pixels(path, frame.width, frame.height, max_pixels, "video frame")
                frames.append(luminance(frame.to_ndarray(format="rgb24")))
    except InputError:
        raise
    except Exception as err:  # PyAV raises many FFmpeg error classes
        raise InputError(path, f"video cannot be decoded: {error_detail(err, path)}", fix) from err
    if not frames:
        raise InputError(path, "video has no decodable frames", fix)
    return np.stack(frames)
