"""Decision support from measured data: the Generative Infrastructure Matrix (:mod:`.gim`), total cost of
ownership with its environmental part (:mod:`.tco`), the three-pillar ROI model (:mod:`.roi`) and reports
(:mod:`.report`), all read from one hand-written :class:`~reelfoundry.planning.scenario.Scenario`.

Every figure they print says where it came from: ``measured`` (the platform's cost records), ``catalog``
(a row of the price catalog, with its source and date) or ``assumption`` (the scenario's, or a documented
default).
"""
