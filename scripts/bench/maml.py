"""Benchmark: MAML meta-gradients per second, tasks vectorized with torch.func.vmap vs a Python loop over tasks."""

from __future__ import annotations

import torch
from common import arguments, best_of, report

from apexctl.forge.maml import Functional, MamlConfig, TaskSet, meta_gradient, new_net


def main() -> None:
    parser = arguments(__doc__, seed=None, repeats=5)
    parser.add_argument("--tasks", type=int, default=16, help="tasks per meta-step (default 16)")
    parser.add_argument("--rows", type=int, default=30, help="support and query rows per task (default 30 each)")
    parser.add_argument("--inputs", type=int, default=20, help="features per row (default 20)")
    parser.add_argument("--inner-steps", type=int, default=3)
    parser.add_argument("--order", type=int, default=2, choices=(1, 2))
    parser.add_argument("--arch", default="mlp", choices=("mlp", "gru"))
    parser.add_argument("--window", type=int, default=8, help="GRU window (default 8)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    window = args.window if args.arch == "gru" else 1
    config = MamlConfig(arch=args.arch, hidden=(32, 32) if args.arch == "mlp" else (32,), window=window)
    fn = Functional(new_net(config, args.inputs, standardize=False))
    shape = (args.tasks, args.rows, window, args.inputs) if window > 1 else (args.tasks, args.rows, args.inputs)
    y = torch.stack([torch.randint(0, 2, (args.tasks, args.rows)).float(), torch.rand(args.tasks, args.rows)], -1)
    tasks = TaskSet(torch.randn(*shape), y, torch.randn(*shape), y.flip(1))
    params = fn.initial()
    kwargs = {"steps": args.inner_steps, "lr": 0.1, "size_weight": 1.0, "order": args.order}

    def ours() -> object:
        return meta_gradient(fn, params, tasks, vectorize=True, **kwargs)

    def loop() -> object:
        return meta_gradient(fn, params, tasks, vectorize=False, **kwargs)

    (g_ours, _), (g_loop, _) = ours(), loop()  # also the warm-up: the first torch.func gradient imports torch._dynamo
    for name in g_ours:
        torch.testing.assert_close(g_ours[name], g_loop[name], rtol=1e-4, atol=1e-6)
    report(
        f"MAML meta-gradient, {args.arch}, {args.tasks} tasks x {args.rows}+{args.rows} rows x {args.inputs} inputs, "
        f"k={args.inner_steps}, order {args.order}, 1 thread",
        "tasks",
        args.tasks,
        best_of(ours, args.repeats),
        best_of(loop, args.repeats),
        "task loop",
    )


if __name__ == "__main__":
    main()
