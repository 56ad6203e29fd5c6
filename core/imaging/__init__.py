"""From a decoded picture to model input and back: dermoscopy preprocessing, TTA views, the pictures
to show and heat-map overlays."""
