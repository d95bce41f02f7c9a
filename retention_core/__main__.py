import sys

if sys.argv[1:2] == ["serve"]:  # one math-library thread per worker, set before NumPy loads (see .threads)
    from .threads import one_math_thread

    one_math_thread()

from .cli import main  # noqa: E402

sys.exit(main())
