"""Serve the plotly.js that ships inside the plotly package as a static file
(`plotly/plotly.min.js`), so charts work offline and no CDN is involved. Only
that one file is exposed, not the package's data sets."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"
PUBLIC_PATH = "plotly/plotly.min.js"


class PlotlyJsFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.storage = FileSystemStorage(location=str(PACKAGE_DATA))
        self.storage.prefix = "plotly"

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get("all", False)
        if path == PUBLIC_PATH:
            found = str(PACKAGE_DATA / "plotly.min.js")
            return [found] if find_all else found
        return [] if find_all else None

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
