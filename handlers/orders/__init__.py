"""Order processing: a saga (validate, reserve stock, charge, confirm) with compensation on a
declined payment, a customer's cancellation or a step past its deadline."""
