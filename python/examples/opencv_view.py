"""Show (or save) the frames of a framepipe stream with OpenCV.

    python opencv_view.py --stream cam0              # a window (needs opencv-python)
    python opencv_view.py --stream cam0 --save out/  # every --every'th frame as PNG

With opencv-python-headless (no GUI), use --save. Frames are numpy views of the shared
slot itself; the conversion to BGR for OpenCV is the only copy.
"""

import argparse
import pathlib

import cv2

import framepipe

TO_BGR = {
    "bgra": cv2.COLOR_BGRA2BGR,
    "rgb24": cv2.COLOR_RGB2BGR,
    "gray8": cv2.COLOR_GRAY2BGR,
    "yuyv": cv2.COLOR_YUV2BGR_YUYV,
    "i420": cv2.COLOR_YUV2BGR_I420,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", default="cam0")
    parser.add_argument("--wait", type=float, default=5.0)
    parser.add_argument("--save", type=pathlib.Path, help="save PNGs here instead of showing")
    parser.add_argument("--every", type=int, default=30, help="with --save: every Nth frame")
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: never)")
    args = parser.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    taken = 0
    with framepipe.Reader(args.stream, wait=args.wait) as reader:
        for frame in reader:  # ends when the producer stops
            bgr = cv2.cvtColor(frame.array, TO_BGR[frame.format])
            taken += 1
            if args.save:
                if taken % args.every == 1 or args.every == 1:
                    path = args.save / f"frame-{frame.seq:08d}.png"
                    cv2.imwrite(str(path), bgr)
                    print(f"{path} (skipped {frame.skipped})")
            else:
                cv2.imshow(f"framepipe {args.stream}", bgr)
                if cv2.waitKey(1) in (ord("q"), 27):
                    break
            if args.frames and taken >= args.frames:
                break
    print(f"{taken} frames")


if __name__ == "__main__":
    main()
