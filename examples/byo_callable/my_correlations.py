"""A user's own correlation, called one sample at a time (so its spec says `vectorized = false`)."""


def nusselt_horizontal_cylinder(Pr: float, Gr: float) -> float:
    """Average Nusselt number of free convection around a long horizontal isothermal cylinder, Churchill and Chu.

        Nu = [0.6 + 0.387 Ra^(1/6) / (1 + (0.559/Pr)^(9/16))^(8/27)]²,  Ra = Gr Pr

    Source: S. W. Churchill, H. H. S. Chu, Int. J. Heat Mass Transfer 18 (1975) 1049-1053.
    Valid for Ra up to ~1e12, all Pr. Inputs: Pr [-], Gr [-]. Output: Nu [-]. (`ht` has it as
    `Nu_horizontal_cylinder_Churchill_Chu`; it is typed out here to stand for any function of your own.)

    >>> round(nusselt_horizontal_cylinder(0.7, 1e6), 3)
    13.133
    """
    Ra = Gr * Pr
    return (0.6 + 0.387 * Ra ** (1 / 6) / (1 + (0.559 / Pr) ** (9 / 16)) ** (8 / 27)) ** 2
