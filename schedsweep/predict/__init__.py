"""Loss-curve laws fitted on a few runs predict the loss of any LR schedule: `schedsweep predict`.

    from schedsweep.predict import Curve, fit
    law = fit([Curve(lr=lr_per_step, steps=observed_steps, loss=observed_loss), ...], law="mpl")  # or "tissue"
    law.predict(lr_per_step)   # the predicted loss after every step
    law.params                 # the fitted parameters
"""

from schedsweep.predict.fitting import Curve, PredictError, fit
from schedsweep.predict.laws import Law

__all__ = ["Curve", "Law", "PredictError", "fit"]
