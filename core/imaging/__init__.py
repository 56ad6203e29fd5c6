"""From a decoded picture to model input and back: quality flags, dermoscopy preprocessing, model input,
TTA views, and the pictures made for people (the case picture, heat-map overlays, the body map)."""
