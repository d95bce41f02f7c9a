import sys

if sys.argv[1:2] == ["serve"]:  # one math-library thread per worker, set before NumPy loads (see .threads)
    from .threads import one_math_thread

    one_math_thread()

from .cli import main  # noqa: E402
from .process_exit import exit_after  # noqa: E402

exit_after(main())
