"""The study's pipeline: notebooks as stages, run by Snakemake.

A *project* is the folder holding ``_config.yml``, ``notebooks/``,
``params/`` and the ``Snakefile`` (:mod:`.project` finds it from where you
stand). Every notebook of ``notebooks/`` is a *stage*: its ``parameters``
cell and its ``crowdnb`` metadata declare what it takes and what it reads
(:mod:`.stages`). A parameter file and ``-p`` overrides resolve to the values
every stage runs with, for one run or for every point of a sweep
(:mod:`.plan`). The Snakefile turns that plan into one Snakemake rule per
stage; Snakemake decides what is stale, locks the run directory, runs jobs in
parallel or on a cluster, and each job executes one notebook with papermill
(:mod:`.execute`). ``crowdnb run`` (:mod:`.run`) is the user's command on top;
:mod:`.locks` keeps two of them, or a stage of a killed one, off the same run.

Notebooks read their upstream stages' outputs and write their own with
:mod:`.stageio`.
"""
