"""Every stage declared in `cobranza.stages` is a command, an API job type (unless declared not to
be), a step of the pipeline where declared, and the lake's hint for the zones it publishes.

These tests run over the stage table: a stage added to it is covered without a new test.
"""

from __future__ import annotations

import ast
import inspect
import sys
import typing
from datetime import date
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import typer
from pydantic import TypeAdapter
from typer.testing import CliRunner

from cobranza.api.jobs import JobRequest
from cobranza.cli import app
from cobranza.lake.layout import ZONES
from cobranza.stages import (
    JOB_TYPES,
    REGISTRY,
    STAGES,
    WHOLE_LAKE,
    PipelineParams,
    Stage,
    StageParams,
    cli_meta,
    conflicts,
    job_stages,
    option_name,
    pipeline_stages,
    publisher,
)
from cobranza.summary import Summary

JOBS = job_stages()
PIPELINE = pipeline_stages()


def _ids(s: Stage) -> str:
    return s.name


def _choices(annotation: Any) -> list[Any]:
    """The values a parameter's type admits, for types with a few (Literal, bool)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return list(args)
    for arg in args:
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    return []


def _sample(params: type[StageParams], name: str) -> Any:
    """A valid value of a parameter other than its default (a required one gets one too)."""
    info = params.model_fields[name]
    choices = _choices(info.annotation)
    if choices:
        return next((c for c in reversed(choices) if c != info.default), choices[0])
    kind = [a for a in typing.get_args(info.annotation) if a is not type(None)] or [info.annotation]
    if bool in kind:
        return not info.default
    if date in kind:
        return date(2025, 6, 30)
    if int in kind:
        low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), 1)
        high = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), low + 10)
        value = (info.default or low) + 1
        return value if value <= high else low
    return f"/tmp/cobranza-{name}"


def _params(stage: Stage) -> dict[str, Any]:
    return {name: _sample(stage.params, name) for name in stage.params.model_fields}


def _parse(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """The command a line names and the values its options parse to, without running it."""
    command = typer.main.get_command(app)
    ctx = command.context_class(command, info_name="cobranza")
    words = list(args)
    while hasattr(command, "get_command"):  # a group: the next word names its command
        name, words = words[0], words[1:]
        found = command.get_command(ctx, name)
        assert found is not None, f"no command {name!r}"
        command = found
        ctx = command.context_class(command, info_name=name, parent=ctx)
    parsed = command.make_context(command.name, words, parent=ctx.parent)
    return command, parsed.params


def _hints(function: Any) -> dict[str, Any]:
    """A function's annotations resolved, names imported for type checking only included."""
    module = sys.modules[function.__module__]
    namespace = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            exec(compile(ast.Module(node.body, []), module.__name__, "exec"), namespace)
    return typing.get_type_hints(function, globalns=namespace)


@pytest.mark.parametrize("stage", STAGES, ids=_ids)
def test_every_stage_is_a_command_whose_help_lists_each_parameter(stage):
    result = CliRunner().invoke(app, [*stage.words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and stage.help.split()[0] in result.output
    for name in stage.params.model_fields:
        meta = cli_meta(stage.params, name)
        shown = name.upper() if meta.argument else option_name(name)
        assert shown in result.output or name in result.output, (name, result.output)
    for setting in stage.cli_settings:
        assert option_name(setting.setting) in result.output


@pytest.mark.parametrize("stage", JOBS, ids=_ids)
def test_every_job_stage_is_an_api_job_whose_params_give_arguments_its_command_reads_back(stage):
    sent = _params(stage)
    job = TypeAdapter(JobRequest).validate_python({"type": stage.name, "params": sent})
    assert type(job.params) is stage.params
    command, parsed = _parse(job.params.cli_args())
    assert command.name == stage.words[-1]
    for name, value in sent.items():
        read = parsed[name]
        if cli_meta(stage.params, name).path:
            assert Path(read) == Path(value).resolve(), name
        elif isinstance(value, date):
            assert read.date() == value, name
        else:
            assert read == value, name


@pytest.mark.parametrize("stage", JOBS, ids=_ids)
def test_every_job_stage_accepts_its_defaults_and_refuses_unknown_params(stage):
    adapter = TypeAdapter(JobRequest)
    required = [n for n, f in stage.params.model_fields.items() if f.is_required()]
    minimal = {n: _sample(stage.params, n) for n in required}
    job = adapter.validate_python({"type": stage.name, "params": minimal})
    _parse(job.params.cli_args())  # the command reads the defaults too
    with pytest.raises(ValueError, match="extra"):
        adapter.validate_python({"type": stage.name, "params": {**minimal, "shell": "rm -rf /"}})


@pytest.mark.parametrize("stage", JOBS, ids=_ids)
def test_two_jobs_of_one_stage_never_run_at_once(stage):
    """Every job writes something (a zone, the registry, its own files or the whole lake)."""
    assert stage.writes
    assert conflicts(set(stage.writes), set(stage.writes))


def test_a_prune_runs_alone_and_jobs_of_different_zones_run_together():
    prune = next(s for s in STAGES if WHOLE_LAKE in s.writes)
    assert prune.role == "admin" and not prune.holds_lake
    for other in JOBS:
        assert conflicts(set(prune.writes), set(other.writes))
    assert not conflicts({"raw"}, {"results"})


def test_the_api_offers_exactly_the_job_stages():
    assert tuple(s.name for s in STAGES if s.job) == JOB_TYPES
    variants = typing.get_args(typing.get_args(JobRequest)[0])
    assert [v.__name__ for v in variants] == [f"{s.name.capitalize()}Job" for s in JOBS]


@pytest.mark.parametrize("stage", PIPELINE, ids=_ids)
def test_every_pipeline_step_comes_after_the_steps_it_reads_from(stage):
    earlier = PIPELINE[: PIPELINE.index(stage)]
    written = {w for s in earlier for w in s.writes}
    assert set(stage.reads) <= written, (stage.name, set(stage.reads) - written)


@pytest.mark.parametrize("stage", PIPELINE, ids=_ids)
def test_every_pipeline_step_gets_parameters_its_command_reads(stage, tmp_path):
    pipeline = PipelineParams(extract=str(tmp_path / "extract"), dialect="bank-latin1")
    params = stage.params.in_pipeline(pipeline)
    assert type(params) is stage.params
    _parse(params.cli_args())


def test_the_pipeline_job_writes_what_its_steps_write_and_is_a_stage_of_its_own():
    pipeline = next(s for s in STAGES if s.params is PipelineParams)
    assert set(pipeline.writes) == {w for s in PIPELINE for w in s.writes}
    assert REGISTRY in pipeline.writes and not pipeline.pipeline
    assert pipeline.help.endswith(" → ".join(s.name for s in PIPELINE) + ".")


@pytest.mark.parametrize("zone", ZONES)
def test_the_lake_names_a_real_command_for_each_zone(zone):
    words = publisher(zone).split()[1:]
    command, _ = _parse(words if words[-1] != "ingest" else [*words, "extract"])
    assert command.name == words[-1]
    writer = next(s for s in STAGES if zone in s.writes)
    assert publisher(zone) == f"cobranza {writer.title}"


@pytest.mark.parametrize("stage", STAGES, ids=_ids)
def test_every_stage_runs_a_function_that_returns_a_typed_result(stage):
    run = stage.runner()
    hints = _hints(run)
    assert hints["params"] is stage.params
    assert issubclass(hints["return"], Summary)
