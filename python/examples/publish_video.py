"""Publish a video file (anything OpenCV reads) as a framepipe stream.

    python publish_video.py clip.mp4 --stream cam1 [--loop] [--fps 30]

Each decoded frame is converted straight into the free slot (`dst=buf`): no extra copy.
Paced at the file's rate (or --fps; 0: as fast as it decodes). Consumers:
`consumer view --stream cam1`, or `python opencv_view.py --stream cam1 --save out/`.
"""

import argparse
import time

import cv2

import framepipe


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("--stream", default="cam0")
    parser.add_argument("--fps", type=float, help="default: the file's own rate")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--seats", type=int, default=1)
    args = parser.parse_args()
    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        raise SystemExit(f"cannot open {args.video}")
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = args.fps if args.fps is not None else (capture.get(cv2.CAP_PROP_FPS) or 30.0)
    period = 1.0 / fps if fps > 0 else 0.0
    published = 0
    with framepipe.Writer(args.stream, width, height, "bgra", seats=args.seats) as writer:
        print(f"publishing {args.video} as {args.stream}: {width}x{height} bgra at {fps:g} fps")
        start = time.monotonic()
        while True:
            ok, bgr = capture.read()
            if not ok:
                if not args.loop:
                    break
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if period:  # absolute deadlines: no drift
                delay = start + published * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            with writer.frame(capture_ns=time.monotonic_ns()) as buf:
                cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA, dst=buf)
            published += 1
    print(f"{published} frames published")


if __name__ == "__main__":
    main()
