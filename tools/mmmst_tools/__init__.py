"""What the scripts under tools/ share: config and command-line checks, the Fashion-MNIST run driver, logs.

Not part of the ``mmmst`` library (imports go tools/ -> mmmst/, never back). A script in ``tools/`` finds this
package next to it; one in a sub-folder puts ``tools/`` on ``sys.path`` first (``tools/analysis_tools/*.py``).
"""
