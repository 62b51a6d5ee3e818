"""launch/live.launch.py, config/live.yaml and the node's parameters agree with each other.

launch_ros cannot be installed here, so the launch file is read as Python source (AST): its
launch arguments, the Node actions, their parameters, remappings and ROS arguments. The node's
parameters come from live_ros.ros.parameters, the table live_node declares (test_node_params
checks a running node against the same table).
"""

import ast
from pathlib import Path

import pytest
import yaml

from live_ros.ros.parameters import PARAMETERS, VIDEO_PUBLISHER_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'live.launch.py'
CONFIG_FILE = ROOT / 'config' / 'live.yaml'
REQUIRED_ARGUMENTS = {'namespace', 'params_file', 'image_topic', 'model', 'device', 'autostart',
                      'log_level', 'video_source'}


def _literal(node):
    """Turn an AST node into a comparable value; launch substitutions become tagged tuples."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name):
        return ('name', node.id)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        return (name, [_literal(arg) for arg in node.args],
                {kw.arg: _literal(kw.value) for kw in node.keywords})
    return ('expr', ast.unparse(node))


class LaunchFile:
    """What the launch file declares, read from its source."""

    def __init__(self, path):
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.variables = {}
        self.arguments = {}
        self.nodes = {}
        self.opaque_functions = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                self.variables[node.targets[0].id] = _literal(node.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                _, args, kwargs = _literal(node)
                if node.func.id == 'DeclareLaunchArgument':
                    self.arguments[args[0]] = kwargs
                elif node.func.id == 'Node':
                    self.nodes[kwargs['executable']] = kwargs
                elif node.func.id == 'OpaqueFunction':
                    self.opaque_functions[kwargs['function'][1]] = kwargs['args']
        self.functions = {node.name: node for node in ast.walk(self.tree)
                          if isinstance(node, ast.FunctionDef)}

    def resolve(self, value):
        """Follow a variable name to the expression assigned to it."""
        while isinstance(value, tuple) and value[0] == 'name' and value[1] in self.variables:
            value = self.variables[value[1]]
        return value

    def configuration(self, value):
        """Return the launch argument name behind a LaunchConfiguration, else None."""
        value = self.resolve(value)
        if isinstance(value, tuple) and value[0] == 'ParameterValue':
            value = self.resolve(value[1][0])
        if isinstance(value, tuple) and value[0] == 'LaunchConfiguration':
            return value[1][0]
        return None


@pytest.fixture(scope='module')
def launch():
    return LaunchFile(LAUNCH_FILE)


@pytest.fixture(scope='module')
def config():
    data = yaml.safe_load(CONFIG_FILE.read_text())
    assert list(data) == ['/**'], 'config must apply to any node name: /**: ros__parameters:'
    return data['/**']['ros__parameters']


def test_config_lists_every_parameter_with_its_default(config):
    assert set(config) == {param.name for param in PARAMETERS}
    for param in PARAMETERS:
        value = config[param.name]
        # Same ROS type: a YAML 2 would be an integer parameter and be refused for fps.
        assert type(value) is type(param.default), param.name
        assert value == param.default, param.name
        assert param.check(value) is None, param.name


def test_launch_declares_the_documented_arguments(launch):
    assert REQUIRED_ARGUMENTS <= set(launch.arguments)
    for name, kwargs in launch.arguments.items():
        assert kwargs.get('description'), f'launch argument {name} has no description'


def test_opaque_function_arguments_keep_their_names(launch):
    """live_node is built in an OpaqueFunction: its parameters carry the launch variables.

    The other tests follow names to their LaunchConfiguration; that holds because each
    function parameter has the name of the variable passed to it.
    """
    assert set(launch.opaque_functions) == {'live_node_action'}
    function = launch.functions['live_node_action']
    names = [arg.arg for arg in function.args.args]
    assert names[0] == 'context'
    assert [('name', name) for name in names[1:]] == launch.opaque_functions['live_node_action']


def test_launch_node_parameters_match_the_node(launch, config):
    node = launch.nodes['live_node']
    assert (node['package'], node['name']) == ('live_ros', 'live_node')
    # The params file first, then only the overrides given on the command line.
    params = node['parameters']
    assert params == ('expr', '[params_file] + ([overrides] if overrides else [])')
    assert launch.configuration(('name', 'params_file')) == 'params_file'
    declared = {param.name: param for param in PARAMETERS}
    overrides = launch.variables['PARAMS_FILE_OVERRIDES']
    assert {'model', 'device', 'autostart'} <= set(overrides)
    for key, value_type in overrides.items():
        assert key in declared, f'launch sets {key}, which the node does not declare'
        # The parameter's own type: a string 'false' would be refused for a bool.
        default = declared[key].default
        expected = (('expr', 'List[str]') if isinstance(default, list)
                    else ('name', type(default).__name__))
        assert value_type == expected, key
        # Empty = not given: the YAML (here config/live.yaml) keeps its value.
        assert launch.arguments[key]['default_value'] == '', key
        assert declared[key].default == config[key], key
        assert 'params_file' in launch.arguments[key]['description'], key


def test_launch_shuts_down_when_live_node_exits(launch):
    """A live_node that dies (bad model, no CUDA) takes video_publisher and launch with it."""
    on_exit = launch.nodes['live_node']['on_exit']
    assert on_exit[0] == 'Shutdown' and on_exit[2].get('reason')


def test_launch_says_so_when_video_publisher_exits(launch):
    """A video_publisher that fails or ends does not leave live_node watching nothing."""
    on_exit = launch.nodes['video_publisher']['on_exit']
    assert on_exit[0] == 'Shutdown' and 'video_publisher exited' in on_exit[2].get('reason')


def test_params_file_default_is_the_installed_config(launch):
    default = launch.arguments['params_file']['default_value']
    assert default[0] == 'PathJoinSubstitution'
    find_share, *rest = default[1][0]
    assert find_share[0] == 'FindPackageShare' and find_share[1] == ['live_ros']
    assert rest == ['config', 'live.yaml']
    assert (ROOT / Path(*rest)).is_file()


def test_image_topic_remap_namespace_and_log_level(launch):
    remaps = {}
    for executable in ('live_node', 'video_publisher'):
        node = launch.nodes[executable]
        assert launch.configuration(node['namespace']) == 'namespace'
        remaps[executable] = dict(node['remappings'])
        assert launch.configuration(remaps[executable].pop('image')) == 'image_topic'
        flag, level = node['ros_arguments']
        assert flag == '--log-level' and launch.configuration(level) == 'log_level'
    # live_node's compressed input follows image_topic (image_transport: <topic>/compressed)
    base, suffix = remaps['live_node'].pop('image/compressed')
    assert launch.configuration(base) == 'image_topic' and suffix == '/compressed'
    assert remaps == {'live_node': {}, 'video_publisher': {}}
    assert launch.arguments['image_topic']['default_value'] == 'image'
    assert launch.arguments['log_level']['default_value'] == 'info'


def test_video_publisher_only_with_a_source(launch):
    node = launch.nodes['video_publisher']
    condition = node['condition']
    assert condition[0] == 'IfCondition'
    expression = launch.resolve(condition[1][0])
    assert expression[0] == 'PythonExpression'
    assert 'video_source' in [launch.configuration(part) for part in expression[1][0]]
    assert launch.arguments['video_source']['default_value'] == ''
    declared = {param.name: param for param in VIDEO_PUBLISHER_PARAMETERS}
    params, = node['parameters']
    assert set(params) <= set(declared)
    for key in ('fps', 'loop'):
        default = launch.arguments[launch.configuration(params[key])]['default_value']
        assert type(yaml.safe_load(default)) is type(declared[key].default), key
    assert launch.configuration(params['source']) == 'video_source'


def test_overrides_are_typed_substitutions(launch):
    """A given override goes to ParameterValue as a LaunchConfiguration, not performed text.

    launch_ros converts a substitution to the parameter type ('false' -> False) but refuses
    plain text that is not of the type already: `autostart:=false` failed that way.
    """
    function = launch.functions['live_node_action']
    calls = [node for node in ast.walk(function) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == 'ParameterValue']
    assert calls, 'live_node_action builds no ParameterValue'
    for call in calls:
        value = _literal(call.args[0])
        assert value[0] == 'LaunchConfiguration', ast.unparse(call)
        assert {kw.arg for kw in call.keywords} == {'value_type'}
