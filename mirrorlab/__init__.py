"""mirrorlab: do mirror units emerge in agents that both act and watch, and do they help imitation?

The namespace has one layer per folder of the repository, and data flows one way through them:

    mirrorlab.envs        MuJoCo arms and the toy world; episodes and the paired dataset format
    mirrorlab.encoders    CNN frame encoder/decoder, action and sensory-vector encoders
    mirrorlab.analysis    pure statistics, figures and report text on arrays
    mirrorlab.agents      the mirror core, its training, run and activation files, demonstrators, learners
    mirrorlab.experiments one leaf module per `mirrorlab` command, wiring the layers

Below every layer sit the utilities of this root package: `errors` (the one error type for bad
input), `files` (atomic writes, output folders), `provenance` and `permutations`.
"""

from mirrorlab.errors import UserError

__version__ = "0.2.0"

__all__ = ["UserError", "__version__"]
