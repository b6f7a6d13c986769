"""The stepping engine: walkers, time slicing and the bulk solvers that drive the kernel model.

simulator/mm/ holds the kernel's rules, each once; this package decides how many pages one
step of a walk takes (all that fit before a limit, in closed form, or one at a time for the
reference) and how simulated time passes between steps. See engines.py.
"""
