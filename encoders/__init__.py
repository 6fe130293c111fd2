"""Frame encoders (CNN) and decoders, and the action and sensory-vector encoders of the toy world."""
