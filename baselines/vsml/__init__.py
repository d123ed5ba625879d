"""VSML: a network of tiny shared LSTMs meta-trained by evolution strategies (``agent``), and its
learners cloned from another learning algorithm (``clone``)."""
