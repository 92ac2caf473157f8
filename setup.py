"""Build hook: a wheel carries schemas/ and infra/ inside the pipeline package.

Everything else about the package is in pyproject.toml. An installed (not
editable) ``claims`` finds them in ``pipeline/_bundled`` (``pipeline.config``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("schemas", "infra")


class BuildPyWithData(build_py):
    """build_py, then a copy of schemas/ and infra/ into the built pipeline package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "pipeline" / "_bundled"
        for name in BUNDLED:
            shutil.copytree(Path(name), target / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithData})
