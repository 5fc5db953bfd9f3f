"""Photo to sketch: contours from a HED-style network on the frozen VGG19, thinned into strokes,
over pencil shading from the photo's luminance."""
