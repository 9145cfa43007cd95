# The study's pipeline, for Snakemake (https://snakemake.readthedocs.io).
#
# You do not need to know Snakemake to use it: `crowdnb run` resolves the
# parameter files and hands this file to Snakemake (see the README and the
# book's Reproducibility chapter). What Snakemake does with it:
#
# - every notebook of notebooks/ is a *stage*, and each stage is one rule
#   below; a *job* is one stage of one run (runs/<run>/<stage>/);
# - a job reruns when one of its inputs changed (its notebook, the outputs of
#   the stages it reads, the crowdnb source files it imports, the installed
#   library versions, files it reads from outside the run such as your own
#   recordings or a weights file), when the value of one of its parameters
#   changed, or when one of its outputs is missing; `crowdnb run --dry-run`
#   says which, for each job;
# - it locks the outputs a run is writing, so a second run on the same run
#   directory is refused, and it reruns what an interrupted run left
#   unfinished;
# - it runs independent jobs side by side (`--jobs N`), or on a cluster
#   through an executor plugin (`--executor slurm`).
#
# Snakemake works in the folder of runs (runs/ by default): every path below
# is relative to it. The plan (crowdnb/workflow/plan.py) knows which runs,
# stages, parameters and inputs this invocation has; `config` carries the
# parameter file and the overrides from `crowdnb run`.

from crowdnb.workflow.plan import plan_from_config

PLAN = plan_from_config(config)

# A run's name (runs/<run>/) and a sweep's are fixed by the plan, so that
# every path belongs to one rule only.
wildcard_constraints:
    run=PLAN.run_pattern,
    sweep=PLAN.sweep_pattern,


# What this invocation is asked for: every stage of the run (only those named
# by --only, if any), and the table of a sweep run on its own.
rule all:
    input:
        PLAN.targets,
    default_target: True


# One rule per stage: execute the stage's notebook with papermill for one run.
# Its outputs are the stage's summary (written by the notebook's last cell),
# its record (values, times), the executed notebook, and any file the notebook
# declares; deleting one of them reruns the job.
for stage in PLAN.stages:

    rule:
        name:
            PLAN.rule_name(stage)
        wildcard_constraints:
            run=PLAN.stage_run_pattern(stage, copied=False),
        input:
            unpack(lambda wildcards, stage=stage: PLAN.inputs(wildcards.run, stage.name)),
        output:
            **PLAN.outputs(stage),
        params:
            stage=stage.name,
            parameters=lambda wildcards, stage=stage: PLAN.parameters_json(wildcards.run, stage.name),
        threads: stage.threads
        shell:
            PLAN.execute_command


# A job that computes what another job of this invocation computes (the same
# stage, values and upstream results: a sweep point sharing the main run's
# chapter 1, say) copies that job's folder instead of executing the notebook
# again; its large files are hard links, not copies.
for stage in PLAN.stages:

    rule:
        name:
            PLAN.rule_name(stage, copied=True)
        wildcard_constraints:
            run=PLAN.stage_run_pattern(stage, copied=True),
        input:
            unpack(lambda wildcards, stage=stage: PLAN.copy_inputs(wildcards.run, stage.name)),
        output:
            **PLAN.outputs(stage),
        params:
            stage=stage.name,
            donor=lambda wildcards, stage=stage: PLAN.donor_run(wildcards.run, stage.name),
            # not in the command: as for a stage rule, a change of value reruns the job
            parameters=lambda wildcards, stage=stage: PLAN.parameters_json(wildcards.run, stage.name),
        localrule: True
        shell:
            PLAN.copy_command


# The table of a sweep (runs/<sweep>/results.csv): one row per point, with the
# values the point set and the numbers its stages reported.
rule aggregate_sweep:
    input:
        lambda wildcards: PLAN.sweep_inputs(wildcards.sweep),
    output:
        "{sweep}/results.csv",
    params:
        sweep_file=lambda wildcards: str(PLAN.sweeps[wildcards.sweep].path),
    shell:
        PLAN.aggregate_command
