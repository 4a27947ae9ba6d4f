"""A fuzz harness for ``Node.handle`` (issue 10, part 1), shared by
``tests/test_fuzz_node.py`` (10^4 frames) and ``bench/fuzz.py`` (10^6 frames).

- :mod:`~tests.fuzzing.world`: the seeded world (victim V, peer A, offline contact C) and
  pickled snapshots;
- :mod:`~tests.fuzzing.honest`: the honest run of two contacts, recorded step by step
  from V's side with the stage of every step;
- :mod:`~tests.fuzzing.mutate`: byte and msgpack-tree mutators, a non-canonical packer;
- :mod:`~tests.fuzzing.craft`: input that passes each layer's keys, stamps and
  signatures, so mutations reach the parser behind it;
- :mod:`~tests.fuzzing.cases`: the families of cases (frame, record, message, envelope,
  inner, attacker) and the aftermath;
- :mod:`~tests.fuzzing.probe`: every call into the node, checked and timed;
- :mod:`~tests.fuzzing.harness`: variants (LinkUp parameters as data, one entry per link
  mode in :data:`~tests.fuzzing.harness.LINK_MODES`), the fuzzer and its report.
"""
