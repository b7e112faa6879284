"""Dashboard stack: the Athena view of forecasts against actuals, QuickSight's data source and
SPICE data set on it, a daily fallback refresh, and a refresh started by each pipeline success.

Built only for environments whose `quicksight.enabled` is true. What QuickSight needs before
this stack deploys (subscription, its access to the bucket, the key and Athena) is in
docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_quicksight as quicksight
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import dashboard_view, glue_views
from stacks.config import EnvironmentConfig
from stacks.data_stack import DataStack
from stacks.dead_letter_queue import dead_letter_queue
from stacks.nag import acknowledge_wildcard_resources
from stacks.pipeline_events import execution_status_pattern
from stacks.python_function import PythonFunction

REFRESH_FUNCTION_CODE = Path(__file__).resolve().parents[1] / "lambda" / "quicksight_refresh"
# Long enough to follow an ingestion of this size (a minute or two) with room to spare.
REFRESH_TIMEOUT = cdk.Duration.minutes(10)

# What an owner of each asset may do, as the QuickSight console grants it.
DATA_SOURCE_OWNER_ACTIONS = [
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:UpdateDataSourcePermissions",
    "quicksight:DeleteDataSource",
]
DATA_SET_OWNER_ACTIONS = [
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:CreateIngestion",
    "quicksight:CancelIngestion",
    "quicksight:UpdateDataSet",
    "quicksight:UpdateDataSetPermissions",
    "quicksight:DeleteDataSet",
]


class DashboardStack(cdk.Stack):
    """QuickSight on top of the published tables; deployed after the data stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataStack,
        pipeline_name: str,
        alerts_topic: sns.ITopic,
        **kwargs: object,
    ) -> None:
        if not config.quicksight.enabled or not config.quicksight.principal_arn:
            raise ValueError(
                f"environments.{config.name}.quicksight: the dashboard stack needs enabled: true"
                " and a principal_arn"
            )
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.principal_arn = config.quicksight.principal_arn
        # Names, not tokens, cross from the data stack; the explicit dependency orders deploys.
        self.add_stack_dependency(data)
        self.view = self._view(data.database_name)
        self.data_source = self._data_source(data.workgroup.name)
        self.data_set = self._data_set(data.database_name)
        self.refresh_schedule = self._refresh_schedule()
        self.refresh_function = self._refresh_function(alerts_topic)
        self.rule = self._success_rule(pipeline_name)

    @property
    def data_set_id(self) -> str:
        return self.config.resource_name("dashboard")

    @property
    def data_set_arn(self) -> str:
        return self.format_arn(
            service="quicksight", resource="dataset", resource_name=self.data_set_id
        )

    # -- Athena view -------------------------------------------------------------------------

    def _view(self, database: str) -> cdk.CfnResource:
        return glue_views.glue_table_resource(
            self, "View", database, dashboard_view.table_input(database)
        )

    # -- QuickSight --------------------------------------------------------------------------

    def _data_source(self, workgroup: str) -> quicksight.CfnDataSource:
        return quicksight.CfnDataSource(
            self,
            "DataSource",
            aws_account_id=self.account,
            data_source_id=self.config.resource_name("athena"),
            name=f"Forecast ({self.config.name}) Athena",
            type="ATHENA",
            # The workgroup enforces its result location and KMS encryption for QuickSight too.
            data_source_parameters=quicksight.CfnDataSource.DataSourceParametersProperty(
                athena_parameters=quicksight.CfnDataSource.AthenaParametersProperty(
                    work_group=workgroup
                )
            ),
            ssl_properties=quicksight.CfnDataSource.SslPropertiesProperty(disable_ssl=False),
            permissions=[
                quicksight.CfnDataSource.ResourcePermissionProperty(
                    principal=self.principal_arn, actions=DATA_SOURCE_OWNER_ACTIONS
                )
            ],
        )

    def _data_set(self, database: str) -> quicksight.CfnDataSet:
        data_set = quicksight.CfnDataSet(
            self,
            "DataSet",
            aws_account_id=self.account,
            data_set_id=self.data_set_id,
            name=f"Forecast vs actuals ({self.config.name})",
            import_mode="SPICE",
            physical_table_map={
                "view": quicksight.CfnDataSet.PhysicalTableProperty(
                    relational_table=quicksight.CfnDataSet.RelationalTableProperty(
                        data_source_arn=self.data_source.attr_arn,
                        catalog=dashboard_view.ATHENA_CATALOG,
                        schema=database,
                        name=dashboard_view.VIEW_NAME,
                        input_columns=[
                            quicksight.CfnDataSet.InputColumnProperty(
                                name=column.name, type=column.quicksight_type
                            )
                            for column in dashboard_view.COLUMNS
                        ],
                    )
                )
            },
            permissions=[
                quicksight.CfnDataSet.ResourcePermissionProperty(
                    principal=self.principal_arn, actions=DATA_SET_OWNER_ACTIONS
                )
            ],
        )
        # Creating a SPICE data set runs a first ingestion, which needs the view in place.
        data_set.add_resource_dependency(self.view)
        return data_set

    def _refresh_schedule(self) -> quicksight.CfnRefreshSchedule:
        settings = self.config.quicksight
        schedule = quicksight.CfnRefreshSchedule(
            self,
            "FallbackRefresh",
            aws_account_id=self.account,
            data_set_id=self.data_set_id,
            schedule=quicksight.CfnRefreshSchedule.RefreshScheduleMapProperty(
                schedule_id="daily-fallback",
                refresh_type="FULL_REFRESH",
                schedule_frequency=quicksight.CfnRefreshSchedule.ScheduleFrequencyProperty(
                    interval="DAILY",
                    time_of_the_day=settings.refresh_time,
                    time_zone=settings.timezone,
                ),
            ),
        )
        schedule.add_resource_dependency(self.data_set)
        return schedule

    # -- refresh on pipeline success ---------------------------------------------------------

    def _refresh_function(self, alerts_topic: sns.ITopic) -> PythonFunction:
        dead_letters = dead_letter_queue(
            self, "RefreshDeadLetters", holds="the refresh function and its rule"
        )
        function = PythonFunction(
            self,
            "RefreshFunction",
            code_dir=REFRESH_FUNCTION_CODE,
            description="Refreshes the dashboard's SPICE data set after a pipeline success",
            role_description="Starts and follows SPICE ingestions of the dashboard data set",
            timeout=REFRESH_TIMEOUT,
            statements=self._publish_statements(alerts_topic),
            environment={
                "DATASET_ID": self.data_set_id,
                "ALERTS_TOPIC_ARN": alerts_topic.topic_arn,
                "MAX_INGESTIONS_PER_DAY": str(self.config.quicksight.max_ingestions_per_day),
                "TIMEZONE": self.config.quicksight.timezone,
                "FALLBACK_REFRESH_TIME": self.config.quicksight.refresh_time,
            },
            # The function alerts on every failure it sees; a retry would only alert again.
            retry_attempts=0,
            dead_letter_queue=dead_letters,
            id_prefix="Refresh",  # the ids its role and log group were first deployed with
        )
        function.depend_only_on_policies([self._grant_ingestions(function.function_role)])
        return function

    def _grant_ingestions(self, role: iam.Role) -> iam.Policy:
        ingestions = self.format_arn(
            service="quicksight",
            resource="dataset",
            resource_name=f"{self.data_set_id}/ingestion/*",
        )
        policy = iam.Policy(
            self,
            "IngestionPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["quicksight:ListIngestions"], resources=[self.data_set_arn]
                ),
                iam.PolicyStatement(
                    actions=["quicksight:CreateIngestion", "quicksight:DescribeIngestion"],
                    # Authorised on the ingestion resource; the data set ARN is listed too
                    # because QuickSight's documentation names both for these actions.
                    resources=[self.data_set_arn, ingestions],
                ),
            ],
        )
        acknowledge_wildcard_resources(
            policy,
            [ingestions],
            "Ingestion ids are derived from pipeline execution ids at run time; the wildcard is"
            " confined to the ingestions of this one data set.",
        )
        return policy

    @staticmethod
    def _publish_statements(topic: sns.ITopic) -> list[iam.PolicyStatement]:
        """sns:Publish, plus the two key actions an encrypted topic needs (not kms:*Key*)."""
        statements = [iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])]
        if topic.master_key is not None:
            statements.append(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[topic.master_key.key_arn],
                )
            )
        return statements

    def _success_rule(self, pipeline_name: str) -> events.Rule:
        rule = events.Rule(
            self,
            "PipelineSucceeded",
            description="Refresh the dashboard's SPICE data set when the pipeline succeeds",
            event_pattern=execution_status_pattern(self, pipeline_name, ["Succeeded"]),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.refresh_function,
                retry_attempts=4,
                max_event_age=cdk.Duration.hours(2),
                dead_letter_queue=self.refresh_function.dead_letter_queue,
            )
        )
        return rule
