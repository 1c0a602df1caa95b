"""`python -m uniad_edge.train ARGS` = `uniad-edge train ARGS`, the form torchrun launches:
`torchrun --nproc_per_node 2 -m uniad_edge.train --data DIR --out runs/NAME ...`."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["train"]
    main()
