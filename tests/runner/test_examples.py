"""examples/ (GitHub Actions workflow, container image) and the README section say exactly what the
tested recipe (tests/runner/ci_recipe.py, run by test_two_clones.py) does.

No container engine or GitHub runner exists here, so these checks read the files: the workflow
parses and sets exactly the recipe's variables and runs its commands; the Dockerfile installs the
same Meltano and plugins, runs the same command and bakes no secret into the image.
"""

from __future__ import annotations

import re
import shlex

import ci_recipe as recipe
import yaml

ROOT = recipe.ROOT
WORKFLOW = ROOT / "examples" / "github-actions" / "freshbooks-pipeline.yml"
CONTAINER = ROOT / "examples" / "container"
SECRET_PREFIXES = ("TAP_FRESHBOOKS_", "AWS_", "TARGET_", "WEBHOOK_BRIDGE_")


def workflow_job() -> tuple[dict, dict]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    (job,) = workflow["jobs"].values()
    return triggers, job


def test_workflow_is_scheduled_and_sets_exactly_the_recipe_variables():
    triggers, job = workflow_job()
    assert triggers["schedule"][0]["cron"]
    env = job["env"]
    assert set(env) == set(recipe.REQUIRED), set(env) ^ set(recipe.REQUIRED)
    for name, template in recipe.BACKENDS.items():
        assert env[name] == template.format(bucket="${{ vars.PIPELINE_BUCKET }}"), name
    for name, value in recipe.FIXED.items():
        assert env[name] == value
    for name in recipe.SUPPLIED:  # from the repository's secrets/variables, never written in the file
        assert re.fullmatch(r"\$\{\{ (secrets|vars)\.\w+ \}\}", env[name]), name
    for name in (
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY",
        "TAP_FRESHBOOKS_CLIENT_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "TARGET_POSTGRES_PASSWORD",
    ):
        assert env[name].startswith("${{ secrets."), name
    for name in recipe.OPTIONAL:
        assert name in WORKFLOW.read_text()  # documented where a non-AWS S3 API needs it


def test_workflow_runs_the_recipe_commands():
    _, job = workflow_job()
    commands = [line.strip() for step in job["steps"] if "run" in step for line in step["run"].splitlines()]
    assert f'pip install "{recipe.INSTALL_MELTANO}"' in commands
    assert [c for c in commands if c.startswith("meltano install")] == recipe.INSTALL_PLUGINS
    assert commands[-1] == shlex.join(recipe.RUN_COMMAND)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (CONTAINER / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_container_image_installs_and_runs_what_the_recipe_does():
    steps = dockerfile_instructions()
    runs = " && ".join(arg for op, arg in steps if op == "RUN")
    assert f'pip install "{recipe.INSTALL_MELTANO}"' in runs
    installs = [c.strip() for c in runs.split("&&") if c.strip().startswith("meltano install")]
    assert set(recipe.INSTALL_PLUGINS) <= set(installs)
    assert "meltano install utility webhook-bridge" in installs  # the bridge is in the image too
    entrypoint = [eval(arg) for op, arg in steps if op == "ENTRYPOINT"][-1]  # a JSON list
    cmd = [eval(arg) for op, arg in steps if op == "CMD"][-1]
    assert entrypoint + cmd == recipe.RUN_COMMAND
    baked = [arg for op, arg in steps if op in ("ENV", "ARG")]
    assert not [b for b in baked if any(p in b for p in SECRET_PREFIXES)], "no secret or backend in the image"


def test_container_env_file_lists_the_recipe_variables_and_the_image_keeps_local_state_out():
    lines = (CONTAINER / "pipeline.env.example").read_text().splitlines()
    names = [ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#")]
    commented = [ln.lstrip("# ").split("=", 1)[0] for ln in lines if ln.startswith("# ") and "=" in ln]
    fixed_in_image = set(recipe.FIXED)  # the image sets these itself (ENV)
    assert set(names) == set(recipe.REQUIRED) - fixed_in_image
    assert set(recipe.OPTIONAL) <= set(commented)
    for name, template in recipe.BACKENDS.items():
        assert f"{name}={template.format(bucket='your-bucket')}" in lines
    env_line = next(arg for op, arg in dockerfile_instructions() if op == "ENV")
    for name, value in recipe.FIXED.items():
        assert f"{name}={value}" in env_line
    ignored = set((CONTAINER / "Dockerfile.dockerignore").read_text().split())
    assert {".secrets", ".env", ".venv", ".meltano"} <= ignored


def test_readme_section_is_the_recipe():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Run it in CI / cron / containers\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README has no 'Run it in CI / cron / containers' section"
    section = match.group(1)
    assert shlex.join(recipe.RUN_COMMAND) in section
    assert recipe.INSTALL_MELTANO in section
    for name, template in recipe.BACKENDS.items():
        assert f"{name}={template.format(bucket='your-bucket')}" in section, name
    for path in ("examples/github-actions/freshbooks-pipeline.yml", "examples/container/Dockerfile"):
        assert path in section and (ROOT / path).is_file()
