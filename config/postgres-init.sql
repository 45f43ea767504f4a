-- Temporal keeps its own databases next to the platform's.
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
