"""The offline engines (image, speech, video, design, 3D): real files made on this machine with
Pillow, espeak-ng and ffmpeg, with no key and no network. `_media` holds what they share."""
