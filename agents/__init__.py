"""The mirror core (forward and inverse heads on one recurrent core), its training under the study's
conditions, the run and activation files it leaves, the demonstrator and the imitation learners."""
