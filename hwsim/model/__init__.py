"""The model stage: the layer graph, the zoo, training, conversion, codings, data and NIR."""
