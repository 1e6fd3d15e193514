"""Brand kits: compliance analysis of images and video frames against a kit."""
