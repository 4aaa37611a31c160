"""Pipeline steps on arrays and one backbone, no Flower: embed -> cluster -> train -> aggregate -> route/generate (scoring: fedrouter.metrics)."""
