"""The trusted side: pytest plugin, oracle client, runner and result writers.

Nothing here imports, unpickles or evaluates anything a student's code produced.
"""
