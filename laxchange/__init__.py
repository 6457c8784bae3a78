"""laxchange: move a looked-after child's education record safely between councils and schools."""

__version__ = "0.1.0"
