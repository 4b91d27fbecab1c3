"""Video of a page: its CDP screencast, frames kept on disk, encoded to WebM, MP4 or GIF."""
