"""The trainer, split by concern. Import the part you need; nothing here is loaded eagerly.

    build.py    device and dtype choice, model, DDP, compile, optimizer, scaler, loaders -> ``Built``
    state.py    ``TrainState``: what a checkpoint saves and restores (step, tokens, EMA, RNG, data position)
    step.py     one optimizer step -> ``StepResult`` (the one finiteness rule); ``evaluate``
    policy.py   what a resume may change, checked the same way by the CLI and the trainer
    report.py   event payloads and where they go (events.jsonl, stdout, TensorBoard/W&B)
    faults.py   fault injection for tests, handed in by the entry point
    loop.py     the loop: control, pause and stop, and when to log, eval and save

The public API for scripts and benchmarks is ``build.build`` + ``step.train_step``:

    built = build(cfg)
    state = TrainState()
    result = train_step(built, state)          # one optimizer step; state is not advanced
"""
