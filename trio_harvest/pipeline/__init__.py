"""The pipeline: the router (frame to lanes), the bounded lanes, and the rotation task that drains them."""
